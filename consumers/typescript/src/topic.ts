// topic.ts: eport/v1/<site>/<gateway>/<kind>[/<class>] (docs/topics.md).

export interface Topic {
  kind: string; // "data", "evidence", "status", "health", "reply", ...
  site: string;
  gateway: string;
  /** Data topics: the priority class (last level). */
  cls?: string;
}

export function parseTopic(topic: string): Topic | undefined {
  const l = topic.split("/");
  if (l.length < 5 || l[0] !== "eport" || l[1] !== "v1") return undefined;
  if (l[4] === "data" && l.length === 6) return { kind: "data", site: l[2], gateway: l[3], cls: l[5] };
  if (l.length === 5) return { kind: l[4], site: l[2], gateway: l[3] };
  return undefined;
}

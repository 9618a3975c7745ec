// dedup.ts: the last N (source_id, seq) keys seen. Delivery is at-least-once: duplicates come
// close together; one older than the window passes, so a store should still upsert on the key.

export class DedupWindow {
  private readonly keys = new Set<string>();
  private readonly order: string[] = [];
  private head = 0;

  constructor(readonly size: number) {}

  static key(source: string, seq: number): string {
    return `${seq} ${source}`;
  }

  has(source: string, seq: number): boolean {
    return this.keys.has(DedupWindow.key(source, seq));
  }

  add(source: string, seq: number): void {
    const k = DedupWindow.key(source, seq);
    if (this.size <= 0 || this.keys.has(k)) return;
    this.keys.add(k);
    this.order.push(k);
    if (this.order.length - this.head > this.size) {
      this.keys.delete(this.order[this.head++]);
      if (this.head > 4096 && this.head * 2 > this.order.length) {
        this.order.splice(0, this.head);
        this.head = 0;
      }
    }
  }
}

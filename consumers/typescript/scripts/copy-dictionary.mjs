// copy-dictionary.mjs: the build step (npm's prebuild, before tsc) that puts the v2 zstd dictionary
// into the package: schema/eport_v2_dict_1.zdict of the repository, copied to
// eport_v2_dict_1.zdict next to dist/, where src/zstd.ts loads it (relative to its own module,
// never from the source tree) and where `npm pack` takes it. Outside the repository (a package
// unpacked from its tarball) the copy the tarball holds is kept.
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

const pkg = path.join(path.dirname(fileURLToPath(import.meta.url)), "..");
const from = path.join(pkg, "..", "..", "schema", "eport_v2_dict_1.zdict");
const to = path.join(pkg, "eport_v2_dict_1.zdict");
if (fs.existsSync(from)) {
  fs.copyFileSync(from, to);
} else if (!fs.existsSync(to)) {
  console.error(`copy-dictionary: neither ${from} nor ${to} exists: the package cannot read zstd frames of envelope v2`);
  process.exit(1);
}

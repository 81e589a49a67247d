#!/usr/bin/env node
// Generates the TypeScript types of the proto's messages with proto-loader-gen-types
// (shipped with @grpc/proto-loader; no protoc needed), from the package's copy of the proto.
//   node scripts/gen-types.js OUT_DIR          (re)writes OUT_DIR (npm run gen: src/generated)
//   node scripts/gen-types.js --check OUT_DIR  exits 1 if OUT_DIR is not what generation makes
// The options must match the loader's in src/proto.ts (LOADER_OPTIONS).
"use strict";
const fs = require("node:fs");
const os = require("node:os");
const path = require("node:path");
const { execFileSync } = require("node:child_process");

const PACKAGE_DIR = path.resolve(__dirname, "..");
const PROTO_ROOT = path.join(PACKAGE_DIR, "proto");
const GEN = path.join(PACKAGE_DIR, "node_modules", "@grpc", "proto-loader", "build", "bin", "proto-loader-gen-types.js");
const ARGS = [
  "--keepCase", "--longs=String", "--enums=String", "--defaults", "--oneofs",
  "--includeComments", "--grpcLib=@grpc/grpc-js", "-I", PROTO_ROOT,
];

function generate(outDir) {
  fs.rmSync(outDir, { recursive: true, force: true });
  execFileSync(process.execPath, [GEN, ...ARGS, "--outDir", outDir, "stave/v1/stave.proto"], {
    cwd: PACKAGE_DIR,
    stdio: ["ignore", "ignore", "inherit"],
  });
  // The tool writes the proto's absolute path into every file; keep the files independent of
  // where the repository is checked out.
  for (const file of listFiles(outDir)) {
    const full = path.join(outDir, file);
    const text = fs.readFileSync(full, "utf8");
    fs.writeFileSync(full, text.split(PACKAGE_DIR + path.sep).join(""));
  }
}

function listFiles(dir, prefix = "") {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const rel = path.join(prefix, entry.name);
    return entry.isDirectory() ? listFiles(path.join(dir, entry.name), rel) : [rel];
  }).sort();
}

function check(outDir) {
  const fresh = fs.mkdtempSync(path.join(os.tmpdir(), "stave-gen-"));
  try {
    generate(fresh);
    const want = listFiles(fresh);
    const have = fs.existsSync(outDir) ? listFiles(outDir) : [];
    const stale = want.filter((f) => !have.includes(f) ||
      !fs.readFileSync(path.join(fresh, f)).equals(fs.readFileSync(path.join(outDir, f))));
    const extra = have.filter((f) => !want.includes(f));
    if (stale.length || extra.length) {
      console.error(`gen-types: ${outDir} is stale (${[...stale, ...extra].join(", ")}): run npm run gen`);
      return 1;
    }
    return 0;
  } finally {
    fs.rmSync(fresh, { recursive: true, force: true });
  }
}

const args = process.argv.slice(2);
if (args[0] === "--check" && args[1]) process.exitCode = check(path.resolve(args[1]));
else if (args.length === 1) generate(path.resolve(args[0]));
else { console.error("usage: node scripts/gen-types.js [--check] OUT_DIR"); process.exitCode = 2; }

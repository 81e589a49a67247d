#!/usr/bin/env node
// Keeps the package's copy of the public API's proto equal to the repository's.
//   node scripts/proto.js copy   copies <repo>/proto/stave/v1/stave.proto to proto/stave/v1/
//   node scripts/proto.js check  exits 1 if the copy is missing or differs
// The copy makes the published package self-contained: dist/ loads proto/ at run time.
"use strict";
const fs = require("node:fs");
const path = require("node:path");

const PACKAGE_DIR = path.resolve(__dirname, "..");
const SOURCE = path.resolve(PACKAGE_DIR, "..", "..", "proto", "stave", "v1", "stave.proto");
const TARGET = path.join(PACKAGE_DIR, "proto", "stave", "v1", "stave.proto");

function main(mode) {
  if (!fs.existsSync(SOURCE)) {
    // Outside the repository (an installed package) the copy is all there is.
    if (mode === "copy" && fs.existsSync(TARGET)) return 0;
    console.error(`proto: ${SOURCE} not found (run inside the Stave repository)`);
    return 1;
  }
  const source = fs.readFileSync(SOURCE);
  if (mode === "copy") {
    fs.mkdirSync(path.dirname(TARGET), { recursive: true });
    fs.writeFileSync(TARGET, source);
    return 0;
  }
  if (mode === "check") {
    if (!fs.existsSync(TARGET) || !fs.readFileSync(TARGET).equals(source)) {
      console.error(`proto: ${TARGET} differs from ${SOURCE}: run npm run proto:copy`);
      return 1;
    }
    return 0;
  }
  console.error("usage: node scripts/proto.js copy|check");
  return 2;
}

process.exitCode = main(process.argv[2]);

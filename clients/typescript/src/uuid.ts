import { randomBytes } from "node:crypto";

const HEX: string[] = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, "0"));
const POOL_BYTES = 16 * 1024;
let pool = randomBytes(POOL_BYTES);
let poolOffset = 0;

/**
 * A new UUIDv7 (RFC 9562) as a lowercase string: 48 bits of Unix milliseconds, then 74 random
 * bits. Random bytes are drawn in blocks of 16 KiB, so an id costs no system call.
 */
export function uuidv7(nowMs: number = Date.now()): string {
  if (poolOffset + 10 > POOL_BYTES) {
    pool = randomBytes(POOL_BYTES);
    poolOffset = 0;
  }
  const r = pool;
  const o = poolOffset;
  poolOffset += 10;
  const high = Math.floor(nowMs / 0x1000000); // upper 24 of the 48 timestamp bits
  const low = nowMs % 0x1000000; // lower 24
  return (
    HEX[(high >>> 16) & 0xff] + HEX[(high >>> 8) & 0xff] + HEX[high & 0xff] +
    HEX[(low >>> 16) & 0xff] + "-" + HEX[(low >>> 8) & 0xff] + HEX[low & 0xff] + "-" +
    HEX[0x70 | (r[o] & 0x0f)] + HEX[r[o + 1]] + "-" +
    HEX[0x80 | (r[o + 2] & 0x3f)] + HEX[r[o + 3]] + "-" +
    HEX[r[o + 4]] + HEX[r[o + 5]] + HEX[r[o + 6]] + HEX[r[o + 7]] + HEX[r[o + 8]] + HEX[r[o + 9]]
  );
}

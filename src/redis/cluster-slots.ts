/**
 * Redis Cluster hash slots (the Cluster specification's CRC16-XMODEM of the
 * key's hash tag, mod 16384), and for every slot a short hash tag that falls
 * in it. They let a key shared by many subjects (the usage index of
 * src/redis/keys.ts) live in one subject's slot, so a script touching that
 * subject's keys may touch it too.
 */

/** Slots in a Redis Cluster. */
export const CLUSTER_SLOTS = 16_384;

const CRC16_TABLE = (() => {
  const table = new Uint16Array(256);
  for (let byte = 0; byte < 256; byte++) {
    let crc = byte << 8;
    for (let bit = 0; bit < 8; bit++) crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff;
    table[byte] = crc;
  }
  return table;
})();

function crc16(bytes: Uint8Array): number {
  let crc = 0;
  for (const byte of bytes) crc = ((crc << 8) & 0xffff) ^ CRC16_TABLE[((crc >> 8) ^ byte) & 0xff]!;
  return crc;
}

/** The slot of `key`: of the part between the first `{` and the next `}` when that part is not empty, else of the whole key. */
export function clusterSlotOf(key: string): number {
  const open = key.indexOf('{');
  let hashed = key;
  if (open !== -1) {
    const close = key.indexOf('}', open + 1);
    if (close > open + 1) hashed = key.slice(open + 1, close);
  }
  return crc16(Buffer.from(hashed, 'utf8')) % CLUSTER_SLOTS;
}

let tagsBySlot: readonly string[] | undefined;

/**
 * A hash tag content (`s1f3`) whose slot is `slot`. The table is built once,
 * on first use (about 170,000 CRCs, a few tens of ms), and is the same in
 * every process, so every gateway instance names the same keys.
 */
export function hashTagOfSlot(slot: number): string {
  if (tagsBySlot === undefined) {
    const tags = new Array<string>(CLUSTER_SLOTS);
    let found = 0;
    for (let i = 0; found < CLUSTER_SLOTS; i++) {
      const tag = `s${i.toString(36)}`;
      const tagSlot = crc16(Buffer.from(tag, 'latin1')) % CLUSTER_SLOTS;
      if (tags[tagSlot] === undefined) {
        tags[tagSlot] = tag;
        found++;
      }
    }
    tagsBySlot = Object.freeze(tags);
  }
  return tagsBySlot[slot]!;
}

/**
 * The IP list matcher of Device Flow Correlation: which named lists contain
 * an address.
 *
 * Design. All lists of one family are cut into one table of elementary,
 * non-overlapping, sorted ranges `[start, end]`, each labelled with the set
 * of lists that contain every address of it (a "list set", stored once and
 * shared). A lookup is one binary search over the range starts, then one
 * comparison with the range's end: its cost does not depend on how many lists
 * there are or how they overlap, and it allocates nothing (the answer is the
 * list set's frozen array of names). IPv4 ranges are `Uint32Array`s; IPv6
 * ranges are four big-endian 32-bit words per bound (no BigInt).
 *
 * The table is built by a sweep: every entry becomes an "open at its first
 * address" and a "close after its last address" event; the events are sorted
 * with a stable LSD radix sort on 16-bit digits (opens before closes at the
 * same address), then walked while counting, per list, how many of its
 * entries cover the current address. A range is emitted whenever the set of
 * covering lists changes, and glued to the previous one when it is adjacent
 * and has the same lists — so overlapping, duplicate and adjacent entries
 * merge.
 *
 * Decisions:
 * - `lookup()` returns every list that contains the address, in the order the
 *   lists were given to the constructor (not by specificity: DFC reports each
 *   list that matched, and a range table does not keep prefix lengths).
 * - Lists given with the same name are one list (their entries are merged).
 * - An IPv4-mapped IPv6 address (`::ffff:a.b.c.d`, as dual-stack sockets
 *   report IPv4 peers) is looked up as the IPv4 address, against IPv4 entries
 *   only: `::/0` does not match it, `0.0.0.0/0` does. List entries inside
 *   `::ffff:0:0/96` were already stored as IPv4 by the parser. IPv4-compatible
 *   (`::a.b.c.d`, deprecated) and NAT64 addresses are plain IPv6.
 * - An address that cannot be parsed is a caller's error: `TypeError`.
 *
 * @module
 */

import { type IpListEntries, parseIpAddressInto } from "./ip_list_parse.ts";

const NO_LISTS: readonly string[] = Object.freeze([]);

/** Name and size of one list in a matcher. */
export interface IpListSummary {
  /** The list's name. */
  name: string;
  /** Entries given for it (IPv4 plus IPv6, before merging). */
  entries: number;
}

/** One family's range table. */
interface RangeTable {
  starts: Uint32Array;
  ends: Uint32Array;
  sets: Uint32Array;
  count: number;
}

/**
 * Answers which of many named IP lists contain an address.
 *
 * @example
 * ```ts
 * import { parseIpList } from "./ip_list_parse.ts";
 * import { IpMatcher } from "./ip_list.ts";
 * const matcher = new IpMatcher([
 *   parseIpList("drop", "198.51.100.0/24 ; SBL1\n"),
 *   parseIpList("c2", "198.51.100.7\n2001:db8::/32\n"),
 * ]);
 * matcher.lookup("198.51.100.7"); // ["drop", "c2"]
 * matcher.lookup("::ffff:198.51.100.8"); // ["drop"]
 * matcher.contains("203.0.113.1"); // false
 * ```
 */
export class IpMatcher {
  /** The lists, in lookup order, with their sizes. */
  readonly lists: readonly IpListSummary[];
  #sets: (readonly string[])[] = [NO_LISTS];
  #setIds = new Map<string, number>();
  #v4: RangeTable;
  #v6: RangeTable;
  #words = new Uint32Array(4);

  /**
   * Builds the range tables. Entries are copied: the inputs may be dropped
   * afterwards.
   *
   * @param lists parsed lists (or any named typed-array entries)
   */
  constructor(lists: Iterable<IpListEntries>) {
    const byName = new Map<string, IpListEntries[]>();
    for (const list of lists) {
      const same = byName.get(list.name);
      if (same) same.push(list);
      else byName.set(list.name, [list]);
    }
    const names = [...byName.keys()];
    this.lists = names.map((name) => ({
      name,
      entries: byName.get(name)!.reduce((n, l) => n + l.v4Prefixes.length + l.v6Prefixes.length, 0),
    }));
    const groups = [...byName.values()];
    this.#v4 = this.#build(
      1,
      names,
      concat(groups, (l) => l.v4, (l) => l.v4Prefixes, 1),
    );
    this.#v6 = this.#build(
      4,
      names,
      concat(groups, (l) => l.v6, (l) => l.v6Prefixes, 4),
    );
  }

  /** Number of elementary IPv4 ranges after merging. */
  get v4Ranges(): number {
    return this.#v4.count;
  }

  /** Number of elementary IPv6 ranges after merging. */
  get v6Ranges(): number {
    return this.#v6.count;
  }

  /**
   * Names of the lists that contain `address`, in list order; a shared frozen
   * array (empty if none).
   *
   * @param address text (`192.0.2.1`, `2001:db8::1`, `::ffff:192.0.2.1`) or
   * 4 or 16 network-order bytes
   * @throws {TypeError} if `address` is not an IP address
   */
  lookup(address: string | Uint8Array): readonly string[] {
    const w = this.#words;
    const family = typeof address === "string"
      ? parseIpAddressInto(address, w)
      : bytesInto(address, w);
    if (family === 4) return this.lookupV4(w[0]);
    if (family === 6) {
      if (w[0] === 0 && w[1] === 0 && w[2] === 0xffff) return this.lookupV4(w[3]);
      return this.lookupV6(w[0], w[1], w[2], w[3]);
    }
    throw new TypeError(`Not an IP address: ${describe(address)}`);
  }

  /**
   * Whether any list contains `address` (see {@linkcode IpMatcher.lookup}).
   *
   * @throws {TypeError} if `address` is not an IP address
   */
  contains(address: string | Uint8Array): boolean {
    return this.lookup(address).length > 0;
  }

  /**
   * The hot path for flow sources: lists containing an IPv4 address given as
   * an unsigned 32-bit integer (`a << 24 | b << 16 | c << 8 | d`, unsigned).
   */
  lookupV4(address: number): readonly string[] {
    const { starts, ends, sets, count } = this.#v4;
    const a = address >>> 0;
    if (count === 0 || a < starts[0]) return NO_LISTS;
    let lo = 0;
    let hi = count - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >>> 1;
      if (starts[mid] <= a) lo = mid;
      else hi = mid - 1;
    }
    return a <= ends[lo] ? this.#sets[sets[lo]] : NO_LISTS;
  }

  /**
   * Lists containing an IPv6 address given as four big-endian 32-bit words
   * (most significant first). No IPv4-mapped translation here.
   */
  lookupV6(w0: number, w1: number, w2: number, w3: number): readonly string[] {
    const { starts, ends, sets, count } = this.#v6;
    const a0 = w0 >>> 0, a1 = w1 >>> 0, a2 = w2 >>> 0, a3 = w3 >>> 0;
    // Last range whose start <= address.
    let lo = 0;
    let hi = count - 1;
    let found = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      const k = mid << 2;
      const s0 = starts[k], s1 = starts[k + 1], s2 = starts[k + 2], s3 = starts[k + 3];
      const le = s0 < a0 ||
        (s0 === a0 && (s1 < a1 || (s1 === a1 && (s2 < a2 || (s2 === a2 && s3 <= a3)))));
      if (le) {
        found = mid;
        lo = mid + 1;
      } else {
        hi = mid - 1;
      }
    }
    if (found < 0) return NO_LISTS;
    const k = found << 2;
    const e0 = ends[k], e1 = ends[k + 1], e2 = ends[k + 2], e3 = ends[k + 3];
    const inside = a0 < e0 ||
      (a0 === e0 && (a1 < e1 || (a1 === e1 && (a2 < e2 || (a2 === e2 && a3 <= e3)))));
    return inside ? this.#sets[sets[found]] : NO_LISTS;
  }

  /** Id of the list set `active` (list indices, any order); 0 is the empty set. */
  #setId(active: number[], names: string[]): number {
    if (active.length === 0) return 0;
    const sorted = active.length === 1 ? active : active.slice().sort((a, b) => a - b);
    const key = sorted.join(",");
    let id = this.#setIds.get(key);
    if (id === undefined) {
      id = this.#sets.length;
      this.#sets.push(Object.freeze(sorted.map((i) => names[i])));
      this.#setIds.set(key, id);
    }
    return id;
  }

  /** Sweeps one family's entries (W words per address) into its range table. */
  #build(W: number, names: string[], input: Combined): RangeTable {
    const { nets, prefixes, listIds } = input;
    const n = prefixes.length;
    const m = 2 * n;
    if (n === 0) {
      return {
        starts: new Uint32Array(0),
        ends: new Uint32Array(0),
        sets: new Uint32Array(0),
        count: 0,
      };
    }
    // Event positions: opens [0, n) at each network, closes [n, 2n) at each last address.
    const pos = new Uint32Array(m * W);
    pos.set(nets);
    for (let i = 0; i < n; i++) {
      const p = prefixes[i];
      for (let w = 0; w < W; w++) {
        pos[(n + i) * W + w] = (nets[i * W + w] | ~maskWord(p - 32 * w)) >>> 0;
      }
    }
    const order = radixSort(pos, W, m);

    const counts = new Int32Array(names.length);
    const active: number[] = [];
    const singles = new Int32Array(names.length).fill(-1);
    const setOf = (): number => {
      if (active.length !== 1) return this.#setId(active, names);
      const l = active[0];
      if (singles[l] < 0) singles[l] = this.#setId(active, names);
      return singles[l];
    };

    // Output: at most one range per event group.
    const starts = new Uint32Array(m * W);
    const ends = new Uint32Array(m * W);
    const sets = new Uint32Array(m);
    let count = 0;
    const cur = new Uint32Array(W); // start of the range being built
    let curSet = 0;
    const emit = (endPos: number, endMinusOne: boolean): void => {
      // Range [cur, pos[endPos] (- 1)] with curSet.
      const e = count * W;
      for (let w = 0; w < W; w++) ends[e + w] = pos[endPos * W + w];
      if (endMinusOne) decrement(ends, e, W);
      if (count > 0 && sets[count - 1] === curSet && follows(ends, (count - 1) * W, cur, W)) {
        ends.copyWithin((count - 1) * W, e, e + W); // glue to the previous range
        return;
      }
      starts.set(cur, e);
      sets[count++] = curSet;
    };

    let j = 0;
    while (j < m) {
      const first = order[j];
      const closing = first >= n;
      let dirty = false;
      let k = j;
      // One group: same position and same kind.
      while (k < m && (order[k] >= n) === closing && samePos(pos, first, order[k], W)) {
        const entry = closing ? order[k] - n : order[k];
        const l = listIds[entry];
        if (closing) {
          if (--counts[l] === 0) {
            active.splice(active.indexOf(l), 1);
            dirty = true;
          }
        } else if (counts[l]++ === 0) {
          active.push(l);
          dirty = true;
        }
        k++;
      }
      if (dirty) {
        const next = setOf();
        if (next !== curSet) {
          if (closing) {
            emit(first, false);
            for (let w = 0; w < W; w++) cur[w] = pos[first * W + w];
            increment(cur, 0, W); // wraps only after the last address, when nothing stays open
          } else {
            if (curSet !== 0 && !samePosAt(cur, pos, first, W)) emit(first, true);
            for (let w = 0; w < W; w++) cur[w] = pos[first * W + w];
          }
          curSet = next;
        }
      }
      j = k;
    }
    return {
      starts: starts.slice(0, count * W),
      ends: ends.slice(0, count * W),
      sets: sets.slice(0, count),
      count,
    };
  }
}

/** All lists' entries of one family, concatenated, with each entry's list index. */
interface Combined {
  nets: Uint32Array;
  prefixes: Uint8Array;
  listIds: Uint32Array;
}

function concat(
  groups: IpListEntries[][],
  netsOf: (l: IpListEntries) => Uint32Array,
  prefixesOf: (l: IpListEntries) => Uint8Array,
  W: number,
): Combined {
  let n = 0;
  for (const group of groups) for (const l of group) n += prefixesOf(l).length;
  const nets = new Uint32Array(n * W);
  const prefixes = new Uint8Array(n);
  const listIds = new Uint32Array(n);
  let at = 0;
  groups.forEach((group, id) => {
    for (const l of group) {
      const p = prefixesOf(l);
      const words = netsOf(l);
      if (words.length !== p.length * W) {
        throw new RangeError(`List entries are inconsistent: ${l.name}`);
      }
      nets.set(words, at * W);
      prefixes.set(p, at);
      listIds.fill(id, at, at + p.length);
      at += p.length;
    }
  });
  // Clear host bits, in case the entries did not come from the parser.
  for (let i = 0; i < n; i++) {
    for (let w = 0; w < W; w++) nets[i * W + w] &= maskWord(prefixes[i] - 32 * w);
  }
  return { nets, prefixes, listIds };
}

function maskWord(bits: number): number {
  if (bits <= 0) return 0;
  if (bits >= 32) return 0xffffffff;
  return (0xffffffff << (32 - bits)) >>> 0;
}

/**
 * Stable LSD radix sort of `m` keys of `W` big-endian words each, 16 bits per
 * pass; returns the permutation. Passes where every key has the same digit are
 * skipped (the low words of IPv6 networks, for instance).
 */
function radixSort(keys: Uint32Array, W: number, m: number): Uint32Array {
  let order = new Uint32Array(m);
  for (let i = 0; i < m; i++) order[i] = i;
  let spare = new Uint32Array(m);
  const buckets = new Uint32Array(65536);
  for (let w = W - 1; w >= 0; w--) {
    for (let shift = 0; shift <= 16; shift += 16) {
      buckets.fill(0);
      for (let i = 0; i < m; i++) buckets[(keys[order[i] * W + w] >>> shift) & 0xffff]++;
      if (buckets[(keys[order[0] * W + w] >>> shift) & 0xffff] === m) continue;
      let sum = 0;
      for (let b = 0; b < 65536; b++) {
        const c = buckets[b];
        buckets[b] = sum;
        sum += c;
      }
      for (let i = 0; i < m; i++) {
        const o = order[i];
        spare[buckets[(keys[o * W + w] >>> shift) & 0xffff]++] = o;
      }
      [order, spare] = [spare, order];
    }
  }
  return order;
}

function samePos(pos: Uint32Array, a: number, b: number, W: number): boolean {
  for (let w = 0; w < W; w++) if (pos[a * W + w] !== pos[b * W + w]) return false;
  return true;
}

function samePosAt(cur: Uint32Array, pos: Uint32Array, b: number, W: number): boolean {
  for (let w = 0; w < W; w++) if (cur[w] !== pos[b * W + w]) return false;
  return true;
}

/** Whether `next` is `a[off..]` + 1. */
function follows(a: Uint32Array, off: number, next: Uint32Array, W: number): boolean {
  // a + 1 === next, with carry from the least significant word.
  let carry = 1;
  for (let w = W - 1; w >= 0; w--) {
    const sum = a[off + w] + carry;
    if ((sum >>> 0) !== next[w]) return false;
    carry = sum > 0xffffffff ? 1 : 0;
  }
  return carry === 0;
}

function increment(a: Uint32Array, off: number, W: number): void {
  for (let w = W - 1; w >= 0; w--) {
    if (a[off + w] !== 0xffffffff) {
      a[off + w]++;
      return;
    }
    a[off + w] = 0;
  }
}

function decrement(a: Uint32Array, off: number, W: number): void {
  for (let w = W - 1; w >= 0; w--) {
    if (a[off + w] !== 0) {
      a[off + w]--;
      return;
    }
    a[off + w] = 0xffffffff;
  }
}

/** 4 or 16 network-order bytes → words in `out`; the family, or 0. */
function bytesInto(bytes: Uint8Array, out: Uint32Array): 0 | 4 | 6 {
  if (bytes.length === 4) {
    out[0] = ((bytes[0] << 24) | (bytes[1] << 16) | (bytes[2] << 8) | bytes[3]) >>> 0;
    return 4;
  }
  if (bytes.length === 16) {
    for (let w = 0; w < 4; w++) {
      const b = 4 * w;
      out[w] = ((bytes[b] << 24) | (bytes[b + 1] << 16) | (bytes[b + 2] << 8) | bytes[b + 3]) >>> 0;
    }
    return 6;
  }
  return 0;
}

function describe(address: string | Uint8Array): string {
  return typeof address === "string"
    ? JSON.stringify(address.slice(0, 100))
    : `${address.length} bytes`;
}

// Order statistics of one benchmark's samples, and the ratio Burrow/runc of their medians.

export interface Stats {
  n: number;
  median: number;
  min: number;
  max: number;
}

export function stats(samples: readonly number[]): Stats {
  if (samples.length === 0) throw new Error('stats of no samples');
  const s = [...samples].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  const median = s.length % 2 === 1 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
  return { n: s.length, median, min: s[0], max: s[s.length - 1] };
}

/** Burrow's median over runc's; what every target is stated in. */
export function ratio(burrow: Stats, runc: Stats): number {
  if (runc.median === 0) throw new Error('ratio against a runc median of 0');
  return burrow.median / runc.median;
}

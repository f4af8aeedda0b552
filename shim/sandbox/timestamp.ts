// Exit times with sub-millisecond precision, in protobuf Timestamp shape.

export interface Timestamp {
  seconds: number;
  nanos: number;
}

/** Go's zero time: what containerd expects as exited_at of a process that has not exited. */
export const ZERO_TIME: Timestamp = { seconds: -62135596800, nanos: 0 };

export function now(): Timestamp {
  const ms = performance.timeOrigin + performance.now();
  const seconds = Math.floor(ms / 1000);
  return { seconds, nanos: Math.floor((ms - seconds * 1000) * 1e6) };
}

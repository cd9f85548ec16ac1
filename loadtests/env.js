// Settings from the environment, shared by the k6 scripts; reads no file, so
// a script that needs no seed-bench keys file can import it.

export const BASE_URL = (__ENV.BASE_URL || 'http://127.0.0.1:8080').replace(/\/$/, '');

export function intEnv(name, fallback) {
  const v = __ENV[name];
  if (v === undefined || v === '') return fallback;
  const n = parseInt(v, 10);
  if (Number.isNaN(n)) throw new Error(`${name} must be a whole number, not ${v}`);
  return n;
}

export function fmt(x) {
  return x === undefined || x === null || Number.isNaN(x) ? 'n/a' : x.toFixed(1);
}

// Shared helpers for the Rookery load tests. Imported by the k6 scripts.
import { SharedArray } from 'k6/data';

export const BASE_URL = (__ENV.BASE_URL || 'http://127.0.0.1:8080').replace(/\/$/, '');
export const WS_URL = BASE_URL.replace(/^http/, 'ws') + '/api/v1/stream';
// Written by `rookery seed-bench --keys-file ...`; relative to this directory.
export const KEYS_FILE = __ENV.KEYS_FILE || './bench-users.json';

function load() {
  return JSON.parse(open(KEYS_FILE));
}

// One copy in memory for all VUs.
export const users = new SharedArray('bench users', () => load().users);
export const celebrities = new SharedArray('bench celebrities', () => load().celebrities);

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

// Shared helpers for the Rookery load tests. Imported by the k6 scripts of
// the seed-bench data set (it reads their keys file).
import { SharedArray } from 'k6/data';
import { BASE_URL, intEnv, fmt } from './env.js';

export { BASE_URL, intEnv, fmt };

export const WS_URL = BASE_URL.replace(/^http/, 'ws') + '/api/v1/stream';
// Written by `rookery seed-bench --keys-file ...`; relative to this directory.
export const KEYS_FILE = __ENV.KEYS_FILE || './bench-users.json';

function load() {
  return JSON.parse(open(KEYS_FILE));
}

// One copy in memory for all VUs.
export const users = new SharedArray('bench users', () => load().users);
export const celebrities = new SharedArray('bench celebrities', () => load().celebrities);

// Home feed reads: GET /api/v1/feed?limit=LIMIT as random seeded users
// (api-key header), VUS closed-loop clients for DURATION. The figure is the
// p99 of http_req_duration. PAGES>1 also follows next_cursor that deep.
//
//   VUS=4 DURATION=60s k6 run feed_read.js
import http from 'k6/http';
import { check } from 'k6';
import { BASE_URL, users, intEnv } from './lib.js';

const LIMIT = intEnv('LIMIT', 20);
const PAGES = intEnv('PAGES', 1);
const ORDER = __ENV.ORDER || 'latest';

export const options = {
  vus: intEnv('VUS', 4),
  duration: __ENV.DURATION || '60s',
  summaryTrendStats: ['min', 'med', 'p(90)', 'p(95)', 'p(99)', 'max', 'count'],
  // Reported, never fatal: the run is a measurement.
  thresholds: { 'http_req_duration{name:feed}': [{ threshold: 'p(99)<20', abortOnFail: false }] },
};

export default function () {
  const u = users[Math.floor(Math.random() * users.length)];
  let cursor = null;
  for (let p = 0; p < PAGES; p++) {
    const q = `limit=${LIMIT}&order=${ORDER}` + (cursor ? `&cursor=${encodeURIComponent(cursor)}` : '');
    const res = http.get(`${BASE_URL}/api/v1/feed?${q}`, {
      headers: { 'api-key': u.api_key },
      tags: { name: 'feed' },
    });
    const ok = check(res, {
      'status 200': (r) => r.status === 200,
      'items returned': (r) => r.status === 200 && r.json('items').length > 0,
    });
    if (!ok) return;
    cursor = res.json('next_cursor');
    if (!cursor) return;
  }
}

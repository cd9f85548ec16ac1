// Fan-out latency: one celebrity with FOLLOWERS followers, ONLINE of them
// online (default: all), posts; the time from the POST's response to each
// online follower's receipt of the feed.post.
//
// The online followers (users[0..ONLINE) of the keys file, each one socket)
// connect first; after SETTLE seconds the author posts ROUNDS times, GAP
// seconds apart. A celebrity over the server's ROOKERY_FANOUT_LIMIT is merged into
// feeds on read and told live only to the followers online (ONLINE of
// FOLLOWERS is how that case is measured).
// Every follower records the wall-clock time (Date.now(), one process, one
// clock) at which each post arrives; the author records the time each POST's
// response arrived. As p(receipt) - t(response) = p(receipt - t(response)),
// handleSummary turns the receipt-time percentiles into latency percentiles.
//
//   FOLLOWERS=10000 PER_VU=100 SETTLE=120 ROUNDS=3 GAP=15 k6 run ws_fanout.js
//   FOLLOWERS=50000 ONLINE=10000 PER_VU=100 SETTLE=60 ROUNDS=5 GAP=12 k6 run ws_fanout.js
import http from 'k6/http';
import { check } from 'k6';
import { sleep } from 'k6';
import { WebSocket } from 'k6/experimental/websockets';
import { setTimeout } from 'k6/timers';
import { Counter, Trend } from 'k6/metrics';
import exec from 'k6/execution';
import { BASE_URL, WS_URL, users, celebrities, intEnv, fmt } from './lib.js';

const FOLLOWERS = intEnv('FOLLOWERS', 1000);
const ONLINE = intEnv('ONLINE', FOLLOWERS);
const PER_VU = intEnv('PER_VU', 100);
const SETTLE = intEnv('SETTLE', ONLINE >= 5000 ? 120 : 30);
const ROUNDS = intEnv('ROUNDS', 3);
const GAP = intEnv('GAP', 15);
const OPEN_RATE = intEnv('OPEN_RATE', 20); // new sockets per second per VU
const VUS = Math.ceil(ONLINE / PER_VU);
const TAIL = 20; // seconds the followers stay after the last post

const celeb = celebrities.find((c) => c.followers === FOLLOWERS);
if (!celeb) {
  throw new Error(
    `no celebrity with exactly ${FOLLOWERS} followers in the keys file; seed with --celebrity-followers ${FOLLOWERS}`,
  );
}
if (ONLINE < 1 || ONLINE > FOLLOWERS) {
  throw new Error(`ONLINE must be between 1 and FOLLOWERS (${FOLLOWERS}), not ${ONLINE}`);
}

const receipt = [];
const response = [];
for (let r = 0; r < ROUNDS; r++) {
  receipt.push(new Trend(`fanout_receipt_epoch_ms_r${r}`));
  response.push(new Trend(`fanout_post_response_epoch_ms_r${r}`));
}
const opened = new Counter('ws_opened');
const failed = new Counter('ws_failed');
const closedEarly = new Counter('ws_closed_early');
const postDuration = new Trend('post_http_ms', true);

let roundMarker = null;

const followersFor = SETTLE + ROUNDS * GAP + TAIL;

export const options = {
  scenarios: {
    followers: {
      executor: 'per-vu-iterations',
      exec: 'follower',
      vus: VUS,
      iterations: 1,
      maxDuration: `${followersFor + 60}s`,
      gracefulStop: '30s',
    },
    author: {
      executor: 'per-vu-iterations',
      exec: 'author',
      vus: 1,
      iterations: 1,
      startTime: `${SETTLE}s`,
      maxDuration: `${ROUNDS * GAP + 60}s`,
    },
  },
  summaryTrendStats: ['min', 'med', 'p(50)', 'p(95)', 'p(99)', 'max', 'count'],
};

// A token per run, so a post left from an earlier run never counts.
export function setup() {
  return { run: `${Date.now()}` };
}

export function follower(data) {
  roundMarker = `fanout ${data.run} round `;
  const vu = exec.vu.idInTest - 1; // the author's VU comes after these
  const first = vu * PER_VU;
  const last = Math.min(first + PER_VU, ONLINE);
  const sockets = [];
  const receipts = []; // round, epoch ms, round, epoch ms, ...
  const t0 = Date.now();
  for (let i = first; i < last; i++) {
    setTimeout(() => {
      const ws = new WebSocket(WS_URL, null, { headers: { 'api-key': users[i].api_key } });
      const s = { ws, open: false, closing: false };
      sockets.push(s);
      ws.onopen = () => {
        s.open = true;
        opened.add(1);
      };
      ws.onerror = (e) => {
        if (!s.open) failed.add(1);
        if (__ENV.DEBUG) console.warn(`user ${users[i].username}: ${e.error}`);
      };
      ws.onclose = () => {
        if (s.open && !s.closing) closedEarly.add(1);
      };
      ws.onmessage = (m) => {
        const now = Date.now();
        // Matched as a string, neither JSON.parse'd nor matched with a regular
        // expression: k6 shares the server's cores, and the work its handlers
        // do for 10,000 frames shows up as latency.
        const frame = m.data;
        const at = frame.indexOf(roundMarker);
        if (at < 0 || frame.indexOf('"type":"feed.post"') < 0) return;
        const r = parseInt(frame.substring(at + roundMarker.length, at + roundMarker.length + 4), 10);
        if (!(r >= 0 && r < ROUNDS)) return;
        // Recorded into the trend after the last round: a metric sample per
        // frame, in the middle of a burst, queues behind k6's single metrics
        // ingester and delays the handlers of the frames after it.
        receipts.push(r, now);
      };
    }, ((i - first) * 1000) / OPEN_RATE);
  }
  setTimeout(() => {
    for (let j = 0; j < receipts.length; j += 2) receipt[receipts[j]].add(receipts[j + 1]);
    for (const s of sockets) s.closing = true;
    for (const s of sockets) if (s.ws.readyState === 1) s.ws.close();
  }, followersFor * 1000 - (Date.now() - t0));
}

export function author(data) {
  for (let r = 0; r < ROUNDS; r++) {
    const res = http.post(
      `${BASE_URL}/api/v1/posts`,
      JSON.stringify({ text: `fanout ${data.run} round ${r} at ${Date.now()} #bench` }),
      { headers: { 'api-key': celeb.api_key, 'content-type': 'application/json' } },
    );
    response[r].add(Date.now());
    postDuration.add(res.timings.duration);
    check(res, { 'post created': (x) => x.status === 201 });
    if (r + 1 < ROUNDS) sleep(GAP);
  }
}

export function handleSummary(data) {
  const m = data.metrics;
  const lines = [];
  const out = { followers: FOLLOWERS, online: ONLINE, celebrity: celeb.username, rounds: [] };
  lines.push(
    `fan-out to ${ONLINE} online followers of ${celeb.username} (id ${celeb.id}, ${FOLLOWERS} followers` +
      `${celeb.fanned_out ? '' : ', merged on read when seeded'})`,
  );
  lines.push(
    `sockets opened ${m.ws_opened ? m.ws_opened.values.count : 0}, failed ${m.ws_failed ? m.ws_failed.values.count : 0}, ` +
      `closed early ${m.ws_closed_early ? m.ws_closed_early.values.count : 0}`,
  );
  for (let r = 0; r < ROUNDS; r++) {
    const rec = m[`fanout_receipt_epoch_ms_r${r}`];
    const resp = m[`fanout_post_response_epoch_ms_r${r}`];
    if (!rec || !resp) {
      lines.push(`round ${r}: no ${!resp ? 'post response' : 'receipt'} recorded`);
      out.rounds.push({ round: r, received: rec ? rec.values.count : 0 });
      continue;
    }
    const t = resp.values.max;
    const row = {
      round: r,
      received: rec.values.count,
      p50_ms: rec.values['p(50)'] - t,
      p95_ms: rec.values['p(95)'] - t,
      p99_ms: rec.values['p(99)'] - t,
      min_ms: rec.values.min - t,
      max_ms: rec.values.max - t,
    };
    out.rounds.push(row);
    lines.push(
      `round ${r}: received ${row.received}/${ONLINE}; from the POST's response to receipt: ` +
        `p50 ${fmt(row.p50_ms)} ms, p95 ${fmt(row.p95_ms)} ms, p99 ${fmt(row.p99_ms)} ms, ` +
        `min ${fmt(row.min_ms)} ms, max ${fmt(row.max_ms)} ms`,
    );
  }
  if (m.post_http_ms) {
    const v = m.post_http_ms.values;
    lines.push(`POST /api/v1/posts: med ${fmt(v.med)} ms, max ${fmt(v.max)} ms`);
  }
  const text = lines.join('\n') + '\n';
  const result = { stdout: text };
  if (__ENV.SUMMARY_FILE) result[__ENV.SUMMARY_FILE] = JSON.stringify({ ...out, text }, null, 2);
  return result;
}

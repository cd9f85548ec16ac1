// The microblog feed benchmark (issue 17): GET /api/tweets, the unpaged feed
// of one viewer who follows 100 authors (1,000 tweets, 200 with an image,
// about 5,000 likes: `rookery seed-microblog` makes it), read by VUS
// closed-loop clients for DURATION, all with the viewer's api-key.
//
// LIKES=1 mixes in writes: after every LIKE_EVERY-th read (10: a tenth of
// the reads) a VU likes or unlikes a tweet of that feed as its own liker
// (likers[VU - 1] of the keys file): POST /api/tweets/{id}/likes if the
// liker does not like it, DELETE otherwise. Each VU toggles among the tweets
// its liker liked when seeded and as many others, so likes and unlikes
// balance and the feed (its likes, its size) does not drift during a run.
//
// Each read checks the status and counts the tweets in the body without
// parsing it (one `"stamp":` per tweet), so k6 stays cheap. The summary
// gives reads/s, writes/s and their p50/p95/p99.
//
//   VUS=50 DURATION=60s k6 run microblog_feed.js
//   LIKES=1 VUS=50 DURATION=60s k6 run microblog_feed.js
import http from 'k6/http';
import { check } from 'k6';
import { SharedArray } from 'k6/data';
import { Counter, Trend } from 'k6/metrics';
import { BASE_URL, intEnv, fmt } from './env.js';

// Written by `rookery seed-microblog --keys-file ...`; relative to this directory.
const KEYS_FILE = __ENV.KEYS_FILE || './microblog-users.json';
const LIKES = ['1', 'true', 'yes'].includes((__ENV.LIKES || '').toLowerCase());
const LIKE_EVERY = intEnv('LIKE_EVERY', 10);
const VUS = intEnv('VUS', 50);

// One copy in memory for all VUs; an element is decoded on each access, so
// each VU reads what it needs once.
const meta = new SharedArray('microblog meta', () => {
  const f = JSON.parse(open(KEYS_FILE));
  return [{ viewer: f.viewer, expected_tweets: f.expected_tweets, likes: f.likes }];
});
const likers = new SharedArray('microblog likers', () => JSON.parse(open(KEYS_FILE)).likers);
const tweetIds = new SharedArray('microblog tweets', () => JSON.parse(open(KEYS_FILE)).tweet_ids);

const { viewer, expected_tweets: seededTweets } = meta[0];
// The tweets a whole feed answer holds: the keys file's count (the posts, at
// most ROOKERY_COMPAT_FEED_CAP when seeded), unless TWEETS says otherwise.
const EXPECTED = intEnv('TWEETS', seededTweets);
const FEED_URL = `${BASE_URL}/api/tweets`;
const FEED_PARAMS = { headers: { 'api-key': viewer.api_key }, tags: { name: 'feed' } };

const feedMs = new Trend('feed_ms', true);
const feedBytes = new Trend('feed_body_bytes');
const reads = new Counter('feed_reads');
const writeMs = new Trend('like_ms', true);
const writes = new Counter('like_writes');

export const options = {
  vus: VUS,
  duration: __ENV.DURATION || '60s',
  summaryTrendStats: ['avg', 'min', 'med', 'p(90)', 'p(95)', 'p(99)', 'max', 'count'],
};

// Fails fast on a keys file of another database or a server with another cap.
export function setup() {
  const res = http.get(FEED_URL, FEED_PARAMS);
  if (res.status !== 200) {
    throw new Error(`GET /api/tweets as ${viewer.username}: ${res.status} ${String(res.body).slice(0, 200)}`);
  }
  const n = count(res.body, '"stamp":');
  if (n !== EXPECTED) {
    throw new Error(`the feed has ${n} tweets, the keys file expects ${EXPECTED} (set TWEETS to override)`);
  }
  if (LIKES && VUS > likers.length) {
    console.warn(`${VUS} VUs share ${likers.length} liker keys: their likes may repeat (still 200)`);
  }
  return { bytes: res.body.length };
}

function count(body, needle) {
  if (typeof body !== 'string') return -1;
  let n = 0;
  for (let i = body.indexOf(needle); i !== -1; i = body.indexOf(needle, i + needle.length)) n++;
  return n;
}

// This VU's liker, the tweets it toggles and which of them it likes.
let mine = null;

function liker() {
  if (mine) return mine;
  const l = likers[(__VU - 1) % likers.length];
  const liked = new Set(l.liked);
  const pool = l.liked.slice();
  const want = pool.length + Math.max(l.liked.length, 5);
  for (let tries = 0; pool.length < want && tries < 100 * want; tries++) {
    const id = tweetIds[Math.floor(Math.random() * tweetIds.length)];
    if (!liked.has(id) && !pool.includes(id)) pool.push(id);
  }
  mine = { key: l.api_key, liked, pool };
  return mine;
}

function toggle() {
  const m = liker();
  const id = m.pool[Math.floor(Math.random() * m.pool.length)];
  const unlike = m.liked.has(id);
  const params = { headers: { 'api-key': m.key }, tags: { name: unlike ? 'unlike' : 'like' } };
  const url = `${BASE_URL}/api/tweets/${id}/likes`;
  const res = unlike ? http.del(url, null, params) : http.post(url, null, params);
  writeMs.add(res.timings.duration);
  writes.add(1);
  const ok = check(res, { 'like/unlike status 200': (r) => r.status === 200 });
  if (ok && unlike) m.liked.delete(id);
  else if (ok) m.liked.add(id);
}

export default function () {
  const res = http.get(FEED_URL, FEED_PARAMS);
  feedMs.add(res.timings.duration);
  reads.add(1);
  if (typeof res.body === 'string') feedBytes.add(res.body.length);
  check(res, {
    'feed status 200': (r) => r.status === 200,
    'feed tweet count': (r) => r.status === 200 && count(r.body, '"stamp":') === EXPECTED,
  });
  // Each VU its own phase, so the writes do not come in bursts.
  if (LIKES && (__ITER + __VU) % LIKE_EVERY === 0) toggle();
}

export function handleSummary(data) {
  const m = data.metrics;
  const v = (name) => (m[name] ? m[name].values : {});
  const secs = data.state.testRunDurationMs / 1000;
  const lines = [];
  const out = { vus: VUS, likes: LIKES, like_every: LIKES ? LIKE_EVERY : null, seconds: secs };
  const r = v('feed_reads');
  const f = v('feed_ms');
  out.reads = { count: r.count || 0, per_s: r.rate, p50_ms: f.med, p95_ms: f['p(95)'], p99_ms: f['p(99)'], max_ms: f.max };
  out.body_bytes = { min: v('feed_body_bytes').min, avg: v('feed_body_bytes').avg, max: v('feed_body_bytes').max };
  lines.push(
    `GET /api/tweets as ${viewer.username} (${EXPECTED} tweets), ${VUS} VUs, ${fmt(secs)} s` +
      (LIKES ? `, a like or unlike after every ${LIKE_EVERY}th read` : ', read only'),
  );
  lines.push(
    `reads: ${out.reads.count}, ${fmt(r.rate)} req/s; p50 ${fmt(f.med)} ms, p95 ${fmt(f['p(95)'])} ms, ` +
      `p99 ${fmt(f['p(99)'])} ms, max ${fmt(f.max)} ms; body ${fmt(out.body_bytes.avg / 1024)} KiB on average ` +
      `(${out.body_bytes.min}..${out.body_bytes.max} bytes)`,
  );
  if (LIKES) {
    const w = v('like_writes');
    const d = v('like_ms');
    out.writes = { count: w.count || 0, per_s: w.rate, p50_ms: d.med, p95_ms: d['p(95)'], p99_ms: d['p(99)'], max_ms: d.max };
    lines.push(
      `likes and unlikes: ${out.writes.count}, ${fmt(w.rate)} req/s; p50 ${fmt(d.med)} ms, ` +
        `p95 ${fmt(d['p(95)'])} ms, p99 ${fmt(d['p(99)'])} ms, max ${fmt(d.max)} ms`,
    );
  }
  const all = v('http_reqs');
  const failed = v('http_req_failed');
  out.requests = { per_s: all.rate, failed_rate: failed.rate };
  lines.push(`all requests (setup's read included): ${fmt(all.rate)} req/s, failed ${fmt(100 * (failed.rate || 0))} %`);
  for (const c of data.root_group.checks) {
    lines.push(`check "${c.name}": ${c.passes} passed, ${c.fails} failed`);
  }
  out.checks = data.root_group.checks.map((c) => ({ name: c.name, passes: c.passes, fails: c.fails }));
  const text = lines.join('\n') + '\n';
  const result = { stdout: text };
  if (__ENV.SUMMARY_FILE) result[__ENV.SUMMARY_FILE] = JSON.stringify({ ...out, text }, null, 2);
  return result;
}

// The harness's own ceiling for a body: GET a constant response (a copy of a
// real answer, served as a file) and check it as the real script does, so
// k6's cost per request (receiving and parsing the body) is the same.
//
//   CEILING_URL=http://127.0.0.1:8080/media/m/feed-page.jpg CHECK=items VUS=50 k6 run ceiling.js
//   CEILING_URL=... CHECK=stamp TWEETS=1000 VUS=50 k6 run ceiling.js
//
// CHECK=items parses the JSON and counts `items`, as feed_read.js does;
// CHECK=stamp counts `"stamp":` in the text, as microblog_feed.js does.
import http from 'k6/http';
import { check } from 'k6';
import { intEnv } from './env.js';

const URL = __ENV.CEILING_URL;
const CHECK = __ENV.CHECK || 'items';
const TWEETS = intEnv('TWEETS', 1000);

export const options = {
  vus: intEnv('VUS', 4),
  duration: __ENV.DURATION || '30s',
  summaryTrendStats: ['min', 'med', 'p(90)', 'p(95)', 'p(99)', 'max', 'count'],
};

function count(body, needle) {
  let n = 0;
  for (let i = body.indexOf(needle); i !== -1; i = body.indexOf(needle, i + needle.length)) n++;
  return n;
}

export default function () {
  const res = http.get(URL, { tags: { name: 'ceiling' } });
  check(res, {
    'status 200': (r) => r.status === 200,
    'body as expected': (r) =>
      r.status === 200 &&
      (CHECK === 'items' ? r.json('items').length > 0 : count(r.body, '"stamp":') === TWEETS),
  });
}

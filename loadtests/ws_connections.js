// Holds N idle authenticated WebSocket connections to GET /api/v1/stream.
//
// Each VU opens PER_VU sockets (k6/websockets is event-driven, so one VU holds
// many), each as a different seeded user (api-key header), then holds them all
// for HOLD seconds and closes them. The server's memory is measured from
// outside by run_ws_connections.sh (VmRSS of the server's pid, before and with
// the connections open).
//
//   CONNS=10000 PER_VU=100 HOLD=60 k6 run ws_connections.js
import { WebSocket } from 'k6/experimental/websockets';
import { setTimeout } from 'k6/timers';
import { Counter, Trend } from 'k6/metrics';
import exec from 'k6/execution';
import { users, WS_URL, intEnv } from './lib.js';

const CONNS = intEnv('CONNS', 10000);
const PER_VU = intEnv('PER_VU', 100);
const HOLD = intEnv('HOLD', 60); // seconds every socket stays open once all of a VU's are open
const OPEN_RATE = intEnv('OPEN_RATE', 20); // new sockets per second per VU
const VUS = Math.ceil(CONNS / PER_VU);

if (CONNS > users.length) {
  throw new Error(`CONNS=${CONNS} but the keys file holds only ${users.length} users`);
}

const opened = new Counter('ws_opened');
const failed = new Counter('ws_failed');
const closedEarly = new Counter('ws_closed_early');
const connectTime = new Trend('ws_connect_ms', true);

export const options = {
  scenarios: {
    idle: {
      executor: 'per-vu-iterations',
      vus: VUS,
      iterations: 1,
      maxDuration: `${Math.ceil(PER_VU / OPEN_RATE) + HOLD + 120}s`,
      gracefulStop: '30s',
    },
  },
  summaryTrendStats: ['min', 'med', 'p(95)', 'p(99)', 'max'],
};

export default function () {
  const vu = exec.vu.idInTest - 1;
  const first = vu * PER_VU;
  const last = Math.min(first + PER_VU, CONNS);
  const sockets = [];
  let settled = 0;
  const total = last - first;
  let holdStarted = false;

  const maybeHold = () => {
    if (settled < total || holdStarted) return;
    holdStarted = true;
    setTimeout(() => {
      for (const s of sockets) s.closing = true;
      for (const s of sockets) if (s.ws.readyState === 1) s.ws.close();
    }, HOLD * 1000);
  };

  for (let i = first; i < last; i++) {
    setTimeout(() => {
      const started = Date.now();
      const ws = new WebSocket(WS_URL, null, { headers: { 'api-key': users[i].api_key } });
      const s = { ws, closing: false, open: false };
      sockets.push(s);
      ws.onopen = () => {
        s.open = true;
        opened.add(1);
        connectTime.add(Date.now() - started);
        settled++;
        maybeHold();
      };
      ws.onerror = (e) => {
        if (!s.open) {
          failed.add(1);
          settled++;
          maybeHold();
        }
        if (__ENV.DEBUG) console.warn(`user ${users[i].username}: ${e.error}`);
      };
      ws.onclose = () => {
        if (s.open && !s.closing) closedEarly.add(1);
      };
    }, ((i - first) * 1000) / OPEN_RATE);
  }
}

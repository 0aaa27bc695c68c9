#!/usr/bin/env bash
# Type-checks sluice's published declarations the way a user's project sees them: the
# package as `npm pack` makes it, installed into a fresh strict project (module nodenext,
# lib es2023 + dom, @types/node 20, skipLibCheck false), on the oldest TypeScript the
# README promises and on the newest. Needs `npm run build` first; installs from the npm
# registry into a temporary directory, which it removes.
#
#   bash scripts/check-consumer.sh                 # the documented minimum, and latest
#   bash scripts/check-consumer.sh 5.9 latest      # any versions (npm version specs)
set -euo pipefail
cd "$(dirname "$0")/.."

# The minimum written in the README (section "Requirements"): keep the two in step.
MIN_TYPESCRIPT=5.7
versions=("$@")
[ "${#versions[@]}" -gt 0 ] || versions=("$MIN_TYPESCRIPT" latest)

[ -f dist/server/index.d.ts ] || { echo 'dist/ is missing: run npm run build first' >&2; exit 1; }

work="$(mktemp -d "${TMPDIR:-/tmp}/sluice-consumer.XXXXXX")"
trap 'rm -rf "$work"' EXIT

tarball="$(npm pack --silent --pack-destination "$work" | tail -n 1)"
mkdir "$work/app"
cd "$work/app"

cat > package.json <<'JSON'
{ "name": "sluice-consumer", "private": true, "type": "module" }
JSON
cat > tsconfig.json <<'JSON'
{
  "compilerOptions": {
    "strict": true,
    "module": "nodenext",
    "moduleResolution": "nodenext",
    "target": "es2022",
    "lib": ["es2023", "dom"],
    "types": ["node"],
    "skipLibCheck": false,
    "noEmit": true
  },
  "include": ["index.ts"]
}
JSON
# One use of each entry point, through the package's `exports` (types conditions).
cat > index.ts <<'TS'
import { Channel, scope, select, onTimeout } from 'sluice';
import { connect, endpoint, json, reconnecting, text } from 'sluice/websocket';
import type { ClientSession, ReconnectingSession, Session } from 'sluice/websocket';
import { route, serve, testConversation } from 'sluice/server';
import type { ServerSession } from 'sluice/server';
import { channelEndpoint, contract, toClient, toServer } from 'sluice/network';

const Jobs = channelEndpoint('/jobs', contract('jobs', 1, {
  jobs: toClient<{ id: number }>({ capacity: 4 }),
  results: toServer<{ id: number }>(),
}));
const jobsRoute = Jobs.handle(async ({ channels: { jobs, results } }) => {
  await jobs.send({ id: 1 });
  return (await results.receive()).id;
});
const Echo = endpoint<{ n: number }, { doubled: number }>('/echo');
const channel = new Channel<number>(1);
await scope(async (s) => {
  s.launch(async (signal) => channel.send(1, { signal }));
  await select([channel.onReceive((n) => n), onTimeout(10, () => 0)]);
});
const server = await serve({ port: 0 }, [
  jobsRoute,
  Echo.handle(async ({ incoming, outgoing }: ServerSession<{ n: number }, { doubled: number }>) => {
    for await (const { n } of incoming) await outgoing.send({ doubled: n * 2 });
  }),
]);
const upper = route({
  codec: text(),
  handler: async (session) => {
    for await (const line of session.incoming) await session.outgoing.send(line.toUpperCase());
  },
});
const shouted: string = await testConversation(upper, async ({ incoming, outgoing }) => {
  await outgoing.send('hi');
  return incoming.receive();
});
const doubled = await Echo.connect(server.url, async (session: ClientSession<{ doubled: number }, { n: number }>) => {
  await session.outgoing.send({ n: 21 });
  return (await session.incoming.receive()).doubled;
});
const client = reconnecting<string, string>(server.url, { codec: json() }, async (s: ReconnectingSession<string>) => {
  await s.outgoing.send(`attempt ${s.attempt}`);
});
await client.stop();
const firstJob: number = await Jobs.connect(server.url, async ({ channels: { jobs, results } }) => {
  const { id } = await jobs.receive();
  await results.send({ id });
  return id;
});
const plain: Session<string> = await connect<string>(server.url);
await plain.close();
await server.close();
console.log(shouted, doubled, firstJob);
TS

status=0
for version in "${versions[@]}"; do
  echo "::: consumer project on TypeScript ${version}"
  npm install --silent --no-audit --no-fund --no-save \
    "typescript@${version}" '@types/node@20' "$work/$tarball" >/dev/null
  echo "    tsc $(npx --no-install tsc --version)"
  if npx --no-install tsc -p tsconfig.json; then
    echo "    ok"
  else
    echo "    the declarations do not type-check on TypeScript ${version}" >&2
    status=1
  fi
done
exit "$status"

#!/bin/bash
# usage: bench/worker_rss.sh DIR MODULE PORT -> RSS of a --fake-tts SIP worker of the checkout in DIR once ready (MODULE: driveline, or ivr.cli before the app package)
dir=$1; mod=$2; port=$3; tmp=$(mktemp -d)
cd $dir
DRIVELINE_DATABASE_URL=sqlite:///$tmp/d.db DRIVELINE_FLOWS_DIR=$dir/flows DRIVELINE_RECORDINGS_DIR=$tmp/rec DRIVELINE_PROMPTS_DIR=$tmp/p DRIVELINE_REDIS_URL=redis://127.0.0.1:6379/9 \
  /work/main/.venv/bin/python -m $mod sip --fake-tts --bind 127.0.0.1:$port > $tmp/out 2>&1 &
pid=$!
for i in $(seq 100); do grep -q "sip worker ready" $tmp/out && break; sleep 0.2; done
sleep 1
echo "$mod $(awk '/VmRSS/{print $2/1024 " MB"}' /proc/$pid/status)"
kill $pid; wait $pid 2>/dev/null; rm -rf $tmp

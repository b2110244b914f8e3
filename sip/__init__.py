"""pjsua2 adapter: endpoint, worker process, call legs, media, DTMF, bridge (next issue)."""

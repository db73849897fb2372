// Package e2e holds hfgate's end-to-end tests: the real binary, built from the module root once
// per run, supervising the real example backend (examples/chatbot) under real uvicorn, and
// driven only through its black-box contract (environment, HTTP, signals, log output). Unit
// tests stay beside the code they test; here live the tests that need real processes:
//
//   - the harness, in three files every test runs on: harness_test.go (the binary built once per
//     run, prerequisites, planted secrets, hfgate processes started and stopped, their output
//     awaited line by line), harness_client_test.go (requests, the answers checked against the
//     contract, /ready, the load of the fault and soak tests) and harness_proc_test.go (the
//     process, its connections and its metrics read from outside, with prometheus/procfs and
//     Prometheus's exposition parser);
//   - e2e_test.go: cold start, streaming and WebSockets, crash and restart, bad configuration,
//     SIGTERM drain, relayed lines and masked secrets;
//   - client_test.go: the client address uvicorn sees behind the gateway, with and without a
//     trusted proxy in front;
//   - hold_test.go: holding and replay (a poison request never sent again, a refused POST
//     answered by the restarted backend, a hold that times out);
//   - bodybuffer_test.go: slow request bodies read whole by the gateway before uvicorn sees a
//     connection, then 408;
//   - faults_test.go: kill -9 and SIGTERM under load, restarts a client never sees;
//   - faults_upstream_test.go: an upstream that misbehaves in ways uvicorn cannot be made to
//     (fakeUpstream, a scriptable raw TCP server, lives there);
//   - soak_test.go: a mixed load for HFGATE_SOAK, then leaks checked;
//   - sysmon_test.go: the runtime setting hfgate restarts itself with, measured;
//   - space_test.go: the folder `make space` writes, run as a Hugging Face Space runs it, and
//     the launcher (hfgate.space) on its own;
//   - wheel_test.go: the wheel `make wheel` writes, read back, installed by pip into fresh
//     venvs under each install scheme, and the wheel-based Space folder run as root and as
//     uid 1000 (they also need python3-venv, python3-pip and python3-wheel);
//   - browser_test.go: Debian's Chromium through the example chat page (examples/frontend).
//
// There is no non-test code: this file is only the package's documentation. Paths to the
// module's own files go through repoPath, so the tests read and run what the README's commands
// name from the root. From the root:
//
//	go test -race -count=1 ./e2e/                     # all but the heavy ones (part of make test)
//	go test -count=1 -run TestBrowser -v ./e2e/        # one group
//	make test-faults                                   # crash, SIGTERM and the soak (HFGATE_SOAK)
//
// They need /usr/bin/python3 with fastapi and uvicorn, and for the browser tests
// /usr/bin/chromium, node and playwright-core (`bash .ci/deps` installs them). Without those
// they skip, except when CI=true, where they fail; -short skips them all.
package e2e

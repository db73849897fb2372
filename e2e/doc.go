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
//   - crashloop_test.go: a backend that can never start (a syntax error, a typo in app:ap),
//     said as such in /ready, every 503 and the status page, without repeating its output;
//   - longuphost_test.go: every line JSON with LOG_FORMAT=json on a host up for 35 days (a time
//     namespace), with a control that the clock reaches the runtime;
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
//   - overload_test.go: one uvicorn worker (testdata/overload_app.py) offered more CPU-bound
//     requests than it can serve, then an I/O-bound load it can serve in full;
//   - space_test.go: the folder `make space` writes, run as a Hugging Face Space runs it, and
//     the launcher (hfgate.space) on its own;
//   - wheel_test.go: the files `make release` writes (binaries and wheels for Linux and macOS,
//     the py3-none-any wheel, SHA256SUMS), read back; the wheel for this machine installed by
//     pip into fresh venvs under each install scheme, the any wheel too, and the wheel-based
//     Space folder run as root and as uid 1000 (they also need python3-venv, python3-pip and
//     python3-wheel);
//   - zerogpu_test.go: a Space folder run as a ZeroGPU Space runs it, against stand-ins of
//     ZeroGPU's device API and of the spaces and gradio packages (testdata/zerogpu);
//   - browser_test.go: Debian's Chromium through the example chat page (examples/frontend);
//   - docs_test.go: the guides against the binary (no typed version of hfgate, the README's
//     console sample shaped as hfgate prints it).
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

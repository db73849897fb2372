// Package e2e holds hfgate's end-to-end tests: the real binary, built from the module root once
// per run, supervising the real example backend (examples/chatbot) under real uvicorn, and
// driven only through its black-box contract (environment, HTTP, signals, log output). Unit
// tests stay beside the code they test; here live the tests that need real processes:
//
//   - harness_test.go: building the binary, starting and stopping gateways, reading their logs;
//   - e2e_test.go: cold start, streaming and WebSockets, crash and restart, bad configuration,
//     SIGTERM drain, relayed lines and masked secrets;
//   - faults_test.go, faults_upstream_test.go, fakeupstream_test.go: kill -9 and SIGTERM under
//     load, and an upstream that misbehaves in ways uvicorn cannot be made to;
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

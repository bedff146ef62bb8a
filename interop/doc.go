// Package interop holds the tests that point real third-party SIP tools at
// siplab's daemons on loopback: sipp (registrations with digest auth, calls
// through the proxy with 407, calls to and from our own phones), baresip
// (registering and calling through the proxy) and tshark (a capture of a
// call must decode with no malformed SIP or RTP).
//
// The tools are Debian packages (sip-tester, baresip, tshark); the tests fail
// rather than skip when one is missing, because a skipped interop test
// reads as a passed one. .ci/run installs them.
//
// Every test uses its own fixed 127.0.0.x addresses and free ports, so the
// tests run in parallel with each other and with the rest of the module's
// tests (which use 127.0.0.1-52); bench/run.sh uses 127.0.0.200-206:
//
//	101-103  TestSippRegister           104-107  TestSippCallsThroughProxy
//	108-111  TestSippCallsOurPhone      112-115  TestOurPhoneCallsSipp
//	116-119  TestBaresip                120-127  TestTsharkDecodesCall (one /29)
//	150-153  TestSippPasswordGuessingIsBlocked
//
// The registrar and proxy run in the test process (the same packages and
// wiring as cmd/registrar and cmd/proxy); the tools are the real binaries.
// docs/interop.md says how to point the same tools at the lab by hand.
package interop

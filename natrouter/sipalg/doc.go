// Package sipalg is the lab's consumer-router SIP ALG: the rewriting a home
// router does to SIP over UDP leaving the site, as pure functions on bytes.
//
// A real consumer ALG replaces the phone's private address with the router's
// public one wherever it thinks it belongs (Via, Contact, SDP o=/c=) and
// fixes Content-Length. Real ones get it wrong in recognisable ways; each way
// is a named Fault registered by its own file (fault_*.go), and faults
// combine. With no fault the ALG rewrites consistently: that is the baseline
// the faults deviate from, and what makes a fault visible in a trace.
//
// The package knows nothing about netfilter: natrouter feeds it the packets
// it takes from an NFQUEUE after source NAT, so the packet's source port is
// the mapped (external) port, and sends back what Packet returns. Only the
// outbound direction (LAN → WAN) is rewritten, like the cheap ALGs the faults
// model; nothing is translated back on the way in.
package sipalg

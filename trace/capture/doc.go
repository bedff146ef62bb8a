// Package capture records what a lab daemon sees on its interfaces as pcapng
// files, in pure Go (AF_PACKET via gopacket/afpacket, pcapng via
// gopacket/pcapgo), and reads those files back as SIP messages, RTP
// summaries and STUN messages.
//
// One Capturer per daemon ("node"). It captures the interfaces the daemon
// names, found by address because Docker does not keep interface names or
// order stable, and writes one file per node, <Dir>/<Node>.pcapng, with one
// pcapng interface per captured side named "<node>/<side>" (router-a/lan,
// router-a/wan). Wireshark shows that name in frame.interface_name, so a
// packet seen before and after NAT is told apart by where it was seen.
//
// Files are bounded: when the current file would grow past MaxBytes it is
// renamed <node>.1.pcapng (older ones shift up) and a new one starts; at most
// MaxFiles files exist per node. The writer flushes every FlushInterval so
// tshark and the lab's own tools can read a file while it grows.
//
// A decoded copy of every SIP message, RTP/RTCP packet and STUN message can
// be handed to a callback (Config.OnPacket) as it is captured: that is how
// HEP export is fed without the capture package knowing about HEP.
//
// ReadFile/ReadFiles turn pcapng files (ours or anybody's Ethernet pcapng) into
// time-ordered SIP messages and RTP packet summaries for ladders. STUN
// (KindSTUN: ICE checks, STUN Binding, TURN; decoded with pion/stun) and
// TURN ChannelData (KindChannelData) share the media's ports and are read
// with the RTP (Trace.RTP), told apart by their first bytes (stun.go).
package capture

// Package natrouter is the lab's site NAT router: real kernel NAT programmed
// with nftables from Go (no nft binary, so it runs in a FROM scratch image),
// with NAT behaviours chosen from named RFC 4787 presets, a live UDP pinhole
// timeout, a conntrack-based view and flush of the current mappings, and a
// small JSON control API on a unix socket.
//
// The router finds its LAN and WAN interfaces by address, never by name,
// because Docker does not guarantee interface order inside a container.
//
// Everything the router installs lives in one nftables table of its own
// (siplab_nat by default). Every change re-programs that table in a single
// netlink batch, so the kernel never forwards a packet under half a ruleset.
package natrouter

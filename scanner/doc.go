// Package scanner reproduces the attacks every public SIP service sees within
// minutes of going online, so interns can watch an SBC stop them: an OPTIONS
// sweep with a scanner's User-Agent (SIPVicious svmap) and REGISTER password
// guessing against one account (svcrack). It speaks plain UDP from one
// socket, like those tools, and reports what came back — including silence,
// which is what a blocked attacker gets.
//
// It is a lab tool: it only talks to the target it is given, at a bounded
// rate and count.
package scanner

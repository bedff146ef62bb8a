package exercise

// Step sequences that several exercises' Fix lists share: the same
// commands an intern types to get a call into a given state. Fix lists
// join them with slices.Concat.

// callUp places a call and waits for its 200 OK (the ACK is sent then):
// the opening of every fix that needs a call in progress.
func callUp(from, to string) []Step {
	return []Step{Run("call " + from + " " + to), Run("exec " + from + " wait call-state confirmed -timeout 10s")}
}

// bobRinging waits until bob's phone rings: reject and cancel need a call
// in the ringing state.
const bobRinging = "exec bob wait call-state ringing -timeout 10s"

// aliceEnded waits until alice's newest call has its final response.
const aliceEnded = "exec alice wait call-state terminated -timeout 10s"

// aliceRingsBob places a call from alice to bob and waits until it rings
// (bob's auto_answer off).
func aliceRingsBob() []Step { return []Step{Run("call alice bob"), Run(bobRinging)} }

// aliceEnds runs cmd, which makes alice's call end with the final response
// expect says, and waits until her phone has that response.
func aliceEnds(cmd, expect string) []Step { return []Step{RunExpect(cmd, expect), Run(aliceEnded)} }

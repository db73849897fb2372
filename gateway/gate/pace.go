package gate

import "time"

// pacer paces the line after a Resume: the waiters present then go in a batch at a time
// (Options.ReleaseBatch, then as many every Options.ReleaseEvery), in order, so that a
// restarted backend does not get the whole line in one burst. Once they are all gone (in, or
// out of line) the pace ends: a line that forms later is let in as slots free up.
type pacer struct {
	left   int // paced waiters still in line
	tokens int // how many may go in before the next tick
	timer  *time.Timer
	gen    int // which armed timer is the current one
}

// start paces the waiters in line now.
func (p *pacer) start(line []*waiter, batch int) {
	p.stop()
	for _, w := range line {
		w.paced = true
	}
	p.left = len(line)
	p.tokens = batch
}

// allow reports whether the next waiter may go in now.
func (p *pacer) allow() bool { return p.left == 0 || p.tokens > 0 }

// took counts a waiter let in.
func (p *pacer) took(w *waiter) {
	if p.left > 0 {
		p.tokens--
	}
	p.removed(w)
}

// removed counts a waiter gone from the line.
func (p *pacer) removed(w *waiter) {
	if !w.paced {
		return
	}
	w.paced = false
	p.left--
	if p.left == 0 {
		p.stop()
	}
}

// arm starts the timer for the next batch, unless it runs already.
func (p *pacer) arm(every time.Duration, tick func(gen int)) {
	if p.timer != nil {
		return
	}
	p.gen++
	gen := p.gen
	p.timer = time.AfterFunc(every, func() { tick(gen) })
}

// refill is the tick of timer gen: it reports whether it is still the current one, and then
// allows the next batch.
func (p *pacer) refill(gen, batch int) bool {
	if p.timer == nil || gen != p.gen {
		return false
	}
	p.timer = nil
	p.tokens = batch
	return true
}

func (p *pacer) stop() {
	if p.timer != nil {
		p.timer.Stop()
		p.timer = nil
	}
}

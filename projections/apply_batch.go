package projections

// maxApplyRun bounds how many events applyRun applies under one acquisition
// of the write lock: a request reading the model waits for at most that many
// (about half a microsecond each while replaying).
const maxApplyRun = 32

// applyRun applies a run of decoded events (none with an error), in order,
// each as Apply does, under one acquisition of the write lock instead of one
// each. Runs longer than maxApplyRun are taken in several.
func (m *Model) applyRun(ds []decoded) {
	for len(ds) > 0 {
		run := ds[:min(len(ds), maxApplyRun)]
		ds = ds[len(run):]
		m.mu.Lock()
		for i := range run {
			m.applyLocked(run[i].rec.StreamSeq, run[i].env, run[i].ev)
		}
		m.mu.Unlock()
	}
}

//go:build race

package objstore

// raceEnabled: the race detector slows file-heavy setup about fivefold.
const raceEnabled = true

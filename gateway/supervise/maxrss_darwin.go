package supervise

// maxrssUnit is the unit of rusage's ru_maxrss in bytes: macOS counts bytes
// (Linux counts kibibytes).
const maxrssUnit = 1

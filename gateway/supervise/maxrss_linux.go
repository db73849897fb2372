package supervise

// maxrssUnit is the unit of rusage's ru_maxrss in bytes: Linux counts
// kibibytes (getrusage(2)).
const maxrssUnit = 1024

// Package testhook holds the seams through which tests act at one precise
// moment of a save, a restore or a directory backend's write: change a
// file between reading it and checking it, write into a file right after
// restore placed it, see the order of puts and fsyncs. Each is nil outside
// tests and costs one nil check. It imports nothing of the project, so
// every package and every test can reach it without an import cycle.
package testhook

// AfterRead runs after save read a file's content, before it checks
// whether the file changed meanwhile.
var AfterRead func(path string)

// DuringRead runs after save read a file's first block.
var DuringRead func(path string)

// Placed runs right after restore placed a file under its final name.
var Placed func(path string)

// DirOp sees a directory backend's puts, deletes, fsyncs and syncfs calls
// in order.
var DirOp func(op, name string)

// SetAfterReadHook sets AfterRead; nil removes it.
func SetAfterReadHook(fn func(string)) { AfterRead = fn }

// SetDuringReadHook sets DuringRead; nil removes it.
func SetDuringReadHook(fn func(string)) { DuringRead = fn }

// SetPlacedHook sets Placed; nil removes it.
func SetPlacedHook(fn func(string)) { Placed = fn }

package archive

// SetPlacedHook installs a hook run right after restore moved a file into
// place, before it checks the file is still the one it wrote.
func SetPlacedHook(fn func(string)) { testHookPlaced = fn }

// SetDuringReadHook installs a hook run after save read a file's first
// block.
func SetDuringReadHook(fn func(string)) { testHookDuringRead = fn }

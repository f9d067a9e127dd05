// Package meridian is the root of the Meridian module. It holds no code of
// its own, only the repository-wide tests (deps_test.go enforces the import
// layers of docs/architecture.md). Start reading at docs/architecture.md,
// then cmd/meridian.
package meridian

"""The engine: per-target state (a pure machine), the monitor that folds probe results into
it, the scheduler that runs the probes, and the transition history."""

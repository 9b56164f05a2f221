"""Engine adapters for real autograd libraries.

Each adapter module imports its library only inside ``create(options)``, so gradspec never needs
them; where one is missing (or cannot run here) ``create`` returns an engine whose checks all skip with
the reason.
"""

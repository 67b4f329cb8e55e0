//! Compiled metric instances and prometheus handlers (to be written).

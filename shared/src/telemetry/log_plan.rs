//! Compiled logentry instances and stdio handlers (to be written).

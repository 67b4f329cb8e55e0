//! Go `strings` behaviours (to be written).

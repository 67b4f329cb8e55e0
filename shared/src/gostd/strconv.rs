//! Go `strconv` behaviours (to be written).

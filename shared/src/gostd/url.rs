//! Go `url` behaviours (to be written).

//! Go `idna` behaviours (to be written).

//! Go `mail` behaviours (to be written).

//! Go standard-library behaviours that Mixer inherited and that users can see: duration and
//! time text, byte strings, IP parsing and printing, IDNA names, e-mail and URL parsing, float formatting.
//! Each module mirrors one Go package closely enough that outputs match byte for byte.

pub mod byte_string;
pub mod duration;
pub mod idna;
pub mod mail;
pub mod net_ip;
pub mod strconv;
pub mod strings;
pub mod time;
pub mod unicode_case;
pub mod url;

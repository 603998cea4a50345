//! Otakumori example app.

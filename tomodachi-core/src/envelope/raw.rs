use serde_json::value::RawValue;

use super::{Envelope, EnvelopeError, ServiceIdentity};
use crate::Message;

/// No envelope: the body is the data, and sealing sends the data itself.
///
/// A string is sent as its text (as Python tomodachi sends a raw `str`); anything else as
/// its JSON.
///
/// ```
/// use tomodachi_core::{to_python_json, Envelope, RawEnvelope, ServiceIdentity};
///
/// let sender = ServiceIdentity::new("a", "b");
/// let text = to_python_json("hello").unwrap();
/// assert_eq!(RawEnvelope.seal(&sender, "t", &text).unwrap(), "hello");
/// let list = to_python_json(&[1, 2]).unwrap();
/// assert_eq!(RawEnvelope.seal(&sender, "t", &list).unwrap(), "[1, 2]");
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct RawEnvelope;

impl Envelope for RawEnvelope {
    fn open(&self, _message: &mut Message) -> Result<(), EnvelopeError> {
        Ok(())
    }

    fn seal(
        &self,
        _sender: &ServiceIdentity,
        _topic: &str,
        data: &RawValue,
    ) -> Result<String, EnvelopeError> {
        let json = data.get();
        if json.starts_with('"') {
            serde_json::from_str::<String>(json).map_err(EnvelopeError::Serialize)
        } else {
            Ok(json.to_owned())
        }
    }
}

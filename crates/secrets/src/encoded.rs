//! The encoded forms under which a registered value may reappear.

//! The leak hunt's support: the secrets and their forms, the flows, the channels' readers and
//! the search.

pub(crate) mod flows;
pub(crate) mod http;
pub(crate) mod leftovers;
pub(crate) mod procs;
pub(crate) mod scan;
pub(crate) mod secrets;
pub(crate) mod served;
pub(crate) mod server;
pub(crate) mod store;

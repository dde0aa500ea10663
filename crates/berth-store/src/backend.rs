//! (being written)
pub async fn open(_url: &str) -> Result<std::sync::Arc<dyn crate::Store>, crate::StoreError> { unimplemented!() }

//! Write-behind's durable journal. (Being written.)

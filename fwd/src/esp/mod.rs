//! ESP/AH sans-IO codec (owned by the datapath work).
